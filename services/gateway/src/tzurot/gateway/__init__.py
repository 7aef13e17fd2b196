"""Gateway: the API edge and orchestrator, owner of users, personalities, configs and jobs."""
