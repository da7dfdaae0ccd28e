"""What people read: tables, training curves, low-data curves, pictures, the end-of-run summary."""
