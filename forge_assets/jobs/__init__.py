"""Jobs (asset_jobs.py) and the schedules that launch them (schedules.py)."""
