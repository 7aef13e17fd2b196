"""Memory: conversation history per (channel, personality); long-term memory comes later."""
