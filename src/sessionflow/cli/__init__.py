"""The ``sessionflow`` command line.

Starting it must not import the engine: ``sessionflow --version``, ``-h`` and a
command's argument errors load typer and rich, not numpy, pandas, pyarrow, DuckDB,
exchange_calendars or Dask (tests/test_cli_start.py; timed by benchmarks/cli_start.py).
So a command is listed in ``app.Commands.specs`` as a :class:`~sessionflow.cli.lazy.Lazy`
(``"sessionflow.cli.x_cmd:x"`` and its help line), never registered with
``@app.command()`` or imported by ``app.py``; its own module imports what it needs at
its top, and is imported only when the command line names it. Modules ``app.py``
imports (``errors``, ``options``, ``lazy``) import the engine only inside functions.
Help and argument errors skip what typer itself would load and not use: pydantic
(``coercion``) and the Markdown and traceback renderers (``rich_help``).
"""
