"""Scheduling: pipeline configs, quota admission, trigger tick, dispatch, runs, the reaper."""
