from nemo_sync._version import __version__

__all__ = ['__version__']
