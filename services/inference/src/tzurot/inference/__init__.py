"""Inference: builds prompts and streams answers from OpenAI-compatible LLM providers."""
