"""Code shared by the dashboard's services."""
