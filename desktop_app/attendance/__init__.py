"""Attendance: rules (dedupe, check-in/out), the event writer, reports and CSV export. No Qt."""
