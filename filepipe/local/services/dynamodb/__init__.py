"""DynamoDB: tables and the item size limit."""
