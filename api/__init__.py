"""The recognition web API (``dogbot api``): HTTP only. No SQL, no torch; the catalog does the work."""
