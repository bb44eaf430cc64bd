"""celery"""
