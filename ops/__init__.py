"""What the ``onething`` command does, one module per concern; cli.py only parses and dispatches.

- ``processes``: child processes (the Temporal dev server, a worker, an API), free ports,
  waiting for a port or the API's health, and the ``Stack`` that stops them together;
- ``local_stack``: ``onething run``, the whole local stack in one command;
- ``services``: ``onething worker`` and ``onething api``, run in this process;
- ``demo``: demo accounts' logins, sample submissions and simulated officers (``onething demo``);
- ``accounts``: ``onething accounts add|list|passwd|remove``;
- ``catalogue`` and ``holidays``: ``onething catalogue …`` and ``onething calendar …``;
- ``rebuild``: ``onething rebuild``, the read model from Temporal's histories;
- ``progress``: the progress bar of the long commands.

The benchmark (bench/) and the tests import these directly. Nothing here imports cli.py
or bench/ (bench/ is not installed; these modules are).
"""
