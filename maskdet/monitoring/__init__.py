"""Compliance monitoring (detect.py --track): frame detections turned into people, verdicts and alerts.

tracking.py gives each face a track ID (ByteTrack from the `trackers` package), people.py turns
tracks into people with one verdict each and counts line crossings, alerts.py raises one alert per
person and delivers it to a webhook from a background queue, report.py writes the day's report, and
sinks.py holds the writers (people.csv, alerts/, alerts.jsonl, report.html) that run() closes cleanly.
"""
