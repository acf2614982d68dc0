"""The metadata step: content hash, dimensions, a small EXIF subset and PDF page counts."""
