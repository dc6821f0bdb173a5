"""gpucost.instrument: per-request cost shares for ASGI apps, per-run training cost for MLflow.

Import the submodule you need (`gpucost.instrument.asgi`, `gpucost.instrument.mlflow`);
this package imports nothing so that the optional extras stay optional.
"""

__all__: list[str] = []
