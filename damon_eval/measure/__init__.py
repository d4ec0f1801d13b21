"""One measured run: configuration, guest-side agent, samples, result."""
