"""Parts and canvases: the grid and rendering (canvas), the k-medoids part bank (bank), the
heuristic parser (parser)."""
