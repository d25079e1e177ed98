"""What was sent, where a retry resumes, and where the record is kept between tries."""
