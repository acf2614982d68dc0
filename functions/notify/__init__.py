"""Notify function: tells the owner how processing ended, once per outcome."""
