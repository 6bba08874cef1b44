"""acks"""
