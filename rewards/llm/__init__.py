"""LLM reward synthesis: environment context, prompts, proposers and the search loop."""
