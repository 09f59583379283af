"""Section 2-3 analysis family (224x224): CNN-8, CNN-8-DS, CNN-14-DS, CNN-8-FD, CNN-8-FD-Pooling.

TODO(issue 2): reconstruct from the paper's description and Tables 3-5.
"""
