"""RunPodProvider over REST against a local fake of RunPod's API: prices, create, public port, list, terminate,
and errors that name the action and never the key. The same Autoscaler drives it as drives Vast.ai."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.fakes.runpod_api import API_KEY, FakeRunPod, gpu_type
from vidfarm.errors import ProviderError
from vidfarm.fleet.autoscaler import Autoscaler, FleetPolicy
from vidfarm.fleet.budget import Budget
from vidfarm.fleet.provider import LaunchSpec, ManualClock, OfferQuery
from vidfarm.fleet.runpod import RunPodProvider


@pytest.fixture
def runpod() -> Iterator[FakeRunPod]:
    fake = FakeRunPod().start()
    yield fake
    fake.stop()


def provider(fake: FakeRunPod, key: str = API_KEY, **kwargs: str) -> RunPodProvider:
    return RunPodProvider(key, rest_url=fake.rest_url, graphql_url=fake.graphql_url, **kwargs)


def test_prices_come_from_gpu_types_cheapest_first_within_the_cap(runpod: FakeRunPod) -> None:
    runpod.gpu_types.append(gpu_type("NVIDIA RTX A4000", 0.17, memory=16))  # too little VRAM
    offers = provider(runpod).search_offers(OfferQuery(max_price_per_hour=0.8, min_vram_gb=24))
    assert [(o.gpu_name, o.price_per_hour) for o in offers] == [("NVIDIA RTX A5000", 0.27), ("RTX 4090", 0.69)]
    assert provider(runpod).search_offers(OfferQuery(max_price_per_hour=0.5))[0].price_per_hour == 0.27
    community = provider(runpod, cloud_type="COMMUNITY").search_offers(OfferQuery())
    assert community[0].price_per_hour == pytest.approx(0.27 * 0.8)
    named = provider(runpod).search_offers(OfferQuery(gpu_name="NVIDIA GeForce RTX 4090"))
    assert [o.gpu_name for o in named] == ["RTX 4090"]
    assert runpod.requests[0]["auth"] == f"Bearer {API_KEY}" and runpod.requests[0]["path"] == "/graphql"


def test_create_sends_the_pod_and_the_url_appears_once_the_port_is_mapped(runpod: FakeRunPod) -> None:
    p = provider(runpod)
    offer = p.search_offers(OfferQuery())[0]
    spec = LaunchSpec(image="ghcr.io/x/worker:1", label="vidfarm-worker-1", env={"VIDFARM_WORKER_TOKEN": "t" * 20})
    pod_id = p.create(offer, spec)
    body = runpod.requests[-1]["body"]
    assert body["gpuTypeIds"] == ["NVIDIA RTX A5000"] and body["name"] == "vidfarm-worker-1"
    assert body["ports"] == ["8288/tcp"] and body["env"] == {"VIDFARM_WORKER_TOKEN": "t" * 20}
    assert body["volumeInGb"] == 0 and body["imageName"] == "ghcr.io/x/worker:1"
    [instance] = p.list_labelled("vidfarm-worker")
    assert (instance.id, instance.status, instance.url, instance.price_per_hour) == (pod_id, "loading", "", 0.27)
    runpod.map_port(pod_id, 40123)
    [instance] = p.list_labelled("vidfarm-worker")
    assert (instance.status, instance.url) == ("running", "http://127.0.0.1:40123")
    runpod.add_pod("someone-else")
    assert [i.label for i in p.list_labelled("vidfarm-worker")] == ["vidfarm-worker-1"]
    p.destroy(pod_id)
    p.destroy(pod_id)  # already gone: what we wanted
    assert p.list_labelled("vidfarm-worker") == [] and runpod.destroyed[0]["id"] == pod_id


def test_errors_name_the_action_and_never_the_key(runpod: FakeRunPod) -> None:
    wrong = "wrong-key-that-must-not-leak-0123"
    with pytest.raises(ProviderError) as refused:
        provider(runpod, key=wrong).list_labelled("vidfarm")
    assert "list pods" in str(refused.value) and "HTTP 401" in str(refused.value) and wrong not in str(refused.value)
    p = provider(runpod)
    offer = p.search_offers(OfferQuery())[0]
    runpod.no_capacity.add("NVIDIA RTX A5000")
    with pytest.raises(ProviderError, match="rent a NVIDIA RTX A5000 pod"):
        p.create(offer, LaunchSpec(image="i", label="vidfarm-worker-2"))
    with pytest.raises(ProviderError, match="no RunPod API key"):
        RunPodProvider("")
    assert "key" not in repr(p).replace("api_key=<hidden>", "")


def test_the_autoscaler_rents_destroys_and_cleans_orphans_on_runpod(runpod: FakeRunPod) -> None:
    clock = ManualClock(1000.0)
    orphan = runpod.add_pod("vidfarm-worker-old")
    policy = FleetPolicy(image="i", budget=Budget(per_hour=5, per_day=50), idle_timeout_s=60, tick_s=10)
    scaler = Autoscaler(provider(runpod), policy, clock=clock, ready_check=lambda w: True)
    assert scaler.destroy_orphans() == [orphan]
    scaler.tick(1)
    [pod] = runpod.pods.values()
    runpod.map_port(pod["id"], 40555)
    clock.advance(10)
    scaler.tick(1)
    worker = scaler.acquire("job-1")
    assert worker is not None and worker.url == "http://127.0.0.1:40555" and worker.token in pod["env"].values()
    clock.advance(30)
    scaler.release(worker)
    clock.advance(60)
    scaler.tick(0)
    assert runpod.pods == {} and scaler.workers == {}
