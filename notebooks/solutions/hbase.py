"""Notebook 04."""

# <metric>#<YYYY-MM-DD HH:MM:SS>
ROW_KEY = "TH2#2024-01-02 06:30:00"
