"""Learn Hugging Face Accelerate through four real machine-learning projects: housing prices, predictive maintenance, review sentiment with a real-time API, and network-traffic anomaly detection.

Modules:

- `accel_course.few_shot`: SetFit-style training through the shared `fit`: contrastive label pairs, a cosine-similarity loss on a mean-pooled MiniLM, and a logistic-regression head -- compared with classification-head fine-tuning and TF-IDF on the same folds.
- `accel_course.sentiment_scale`: The review-sentiment model of chapter 24, taken to the sizes where Accelerate's other half matters: loading a model larger than the memory you have, the memory arithmetic of training it on many devices (DDP, ZeRO, FSDP), and scoring a million reviews in several processes.
- `accel_course.serve`: Put the fine-tuned review classifier behind a small, robust JSON API: load once, predict in batches, validate every request, and run it under a production WSGI server."""

__version__ = "0.0.1"
