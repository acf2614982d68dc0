"""S3: buckets, POST Object uploads, presigned URLs and their limits."""
