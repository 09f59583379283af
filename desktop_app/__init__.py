"""FDFace Attendance: face-recognition attendance on the CPU (RetinaFace + FDFaceNet + FAISS)."""

__version__ = "0.1.0"
