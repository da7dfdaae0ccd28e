"""The workflow's definition: params and their resolution, the systems registry, the stage table and
its path scheme, the engines' generated files and code dependencies, the stage CLIs' front door,
provenance, run locks and recovery after a crash."""
