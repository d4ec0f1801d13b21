"""The host side of ``de-agent``, below the workloads that describe what it runs.

=================  ===============================================================
``build.py``       its paths on a machine, the compile script, a local build
``protocol.py``    its command line (``AgentInvocation``) and line protocol
``preparation.py`` ``agent_preparation()``: what a machine gets before a run
=================  ===============================================================

Importing this package imports nothing else.
"""
