# Load testing with Locust — the plan's §11 user, unchanged (issue 5: it must run against the API as is).
# Run: locust -f tests/performance/locustfile.py --host=http://localhost:8000 --users=100 --spawn-rate=10
# `autoins bench api` runs the same mix headless with exact timings (autoins/bench/api_users.py).
from locust import HttpUser, task, between

class InsuranceUser(HttpUser):
    wait_time = between(1, 3)

    def on_start(self):
        # Login
        response = self.client.post("/api/v1/auth/login", json={
            "username": "driver0001",
            "password": "password0001"
        })
        self.token = response.json()["access_token"]
        self.client.headers["Authorization"] = f"Bearer {self.token}"

    @task(3)
    def view_dashboard(self):
        self.client.get("/api/v1/drivers/me")

    @task(2)
    def view_risk_score(self):
        self.client.get("/api/v1/risk/me/score")

    @task(1)
    def view_trips(self):
        self.client.get("/api/v1/drivers/me/trips?page=1&page_size=20")
