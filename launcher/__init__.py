"""The launcher: CLI, local stack, process management, health probes, simulator, MLflow server."""
