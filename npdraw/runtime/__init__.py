"""How a stage runs: params and their resolution, the stage table, the CLI, errors, files, devices,
data-parallel processes, recovery after a crash, provenance.  Imports nothing above it."""
