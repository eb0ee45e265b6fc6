"""Apache Airflow provider for Dropbox and Box with safe, shared OAuth 2 token refresh."""

__version__ = "0.1.0"
