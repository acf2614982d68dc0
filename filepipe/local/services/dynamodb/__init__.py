"""DynamoDB: tables, the item size limit and atomic item operations."""
