"""Using a trained model: the `npdraw` command, the Python API (`npdraw.load`), the editor in the browser."""
