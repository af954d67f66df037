"""The shipped sample apps (`sample_apps.json`): shop, settings, a denied bank app and a long catalogue."""
