"""The complaint workflow: one durable run per complaint (投诉, §8.1.2)."""
