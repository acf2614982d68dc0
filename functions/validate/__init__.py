"""The validate step: accept or reject an upload by its real size and type."""
