"""The tzurot command line."""
