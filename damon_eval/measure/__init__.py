"""One measured run: the in-guest agent, its samples, and the metrics they yield."""
