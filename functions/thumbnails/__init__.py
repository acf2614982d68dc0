"""The thumbnails step: a WebP thumbnail set for each image upload."""
