"""sftforge: supervised fine-tuning datasets as one declarative, resumable Prefect pipeline."""
