"""What one stage hands another: files written atomically, their contracts, and the errors that name
a bad input.  Imports nothing of the project."""
