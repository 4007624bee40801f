"""stateful"""
