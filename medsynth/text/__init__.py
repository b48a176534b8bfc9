"""Clinical text generation with local LLMs: models, backends, prompt strategies, tasks, exports."""
