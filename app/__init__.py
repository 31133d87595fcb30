"""MaM Studio browser app: the Streamlit entry point and shared UI pieces (no model math here)."""
