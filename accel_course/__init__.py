"""Learn Hugging Face Accelerate through four real machine-learning projects: housing prices, predictive maintenance, review sentiment with a real-time API, and network-traffic anomaly detection.

Modules:

- `accel_course.sentiment_scale`: The review-sentiment model of chapter 20, taken to the sizes where Accelerate's other half matters: loading a model larger than the memory you have, the memory arithmetic of training it on many devices (DDP, ZeRO, FSDP), and scoring a million reviews in several processes."""

__version__ = "0.0.1"
