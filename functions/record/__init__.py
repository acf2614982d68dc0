"""Record function: writes PROCESSING and every outcome to the file record."""
