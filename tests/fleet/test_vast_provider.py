"""The real vastai SDK against a local fake of the Vast.ai REST API: search, rent, list, ports, outbid, destroy."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.fakes.vast_api import API_KEY, FakeVast
from vidfarm.errors import ProviderError
from vidfarm.fleet.provider import LaunchSpec, OfferQuery
from vidfarm.fleet.vast import VastProvider, offer_query_text


@pytest.fixture
def vast() -> Iterator[FakeVast]:
    fake = FakeVast().start()
    yield fake
    fake.stop()


def provider(fake: FakeVast, key: str = API_KEY) -> VastProvider:
    return VastProvider(key, server_url=fake.url, retry=1)


def test_search_sends_the_filters_and_returns_offers_cheapest_first(vast: FakeVast) -> None:
    query = OfferQuery(gpu_name="RTX 4090", min_vram_gb=24, max_price_per_hour=0.5, min_inet_down_mbps=2000)
    offers = provider(vast).search_offers(query)
    assert [(o.id, o.price_per_hour, o.gpu_name, round(o.vram_gb)) for o in offers] == [(111, 0.42, "RTX 4090", 25)]
    sent = vast.requests[-1]
    assert (sent["method"], sent["path"]) == ("POST", "/api/v0/bundles/")
    assert sent["body"]["gpu_name"] == {"eq": "RTX 4090"} and sent["body"]["dph_total"] == {"lte": "0.5"}
    assert sent["body"]["inet_down"] == {"gte": "2000"} and sent["body"]["direct_port_count"] == {"gte": "1"}
    assert sent["auth"] == f"Bearer {API_KEY}"
    assert "gpu_name=RTX_4090" in offer_query_text(query)


def test_create_labels_the_instance_passes_env_and_maps_the_port(vast: FakeVast) -> None:
    p = provider(vast)
    offer = p.search_offers(OfferQuery())[0]
    spec = LaunchSpec(image="ghcr.io/x/worker:1", label="vidfarm-worker-1-abc", env={"VIDFARM_WORKER_TOKEN": "t" * 20})
    instance_id = p.create(offer, spec)
    body = next(r for r in vast.requests if r["method"] == "PUT")["body"]
    assert body["label"] == "vidfarm-worker-1-abc" and body["image"] == "ghcr.io/x/worker:1"
    assert body["env"]["VIDFARM_WORKER_TOKEN"] == "t" * 20 and body["cancel_unavail"] is True
    assert "t" * 20 not in repr(spec)
    [listed] = p.list_labelled("vidfarm-worker")
    assert (listed.id, listed.status, listed.url) == (instance_id, "loading", "")
    vast.set_status(int(instance_id), "running", host_port=41234)
    [listed] = p.list_labelled("vidfarm-worker")
    assert (listed.status, listed.url, listed.preempted) == ("running", "http://127.0.0.1:41234", False)
    vast.set_status(int(instance_id), "stopped")  # outbid: intended running, actually stopped
    assert p.list_labelled("vidfarm-worker")[0].preempted
    p.destroy(instance_id)
    assert p.list_labelled("vidfarm-worker") == [] and vast.requests[-2]["method"] == "DELETE"


def test_only_labelled_instances_are_listed(vast: FakeVast) -> None:
    vast.add_instance("someone-elses-notebook")
    mine = vast.add_instance("vidfarm-worker-9-zzz")
    assert [i.id for i in provider(vast).list_labelled("vidfarm-worker")] == [str(mine)]


def test_errors_name_the_action_and_never_the_key(vast: FakeVast) -> None:
    with pytest.raises(ProviderError, match="refused to search offers \\(HTTP 401\\)") as caught:
        provider(vast, key="wrong-key-000000").search_offers(OfferQuery())
    assert "wrong-key" not in str(caught.value) and "wrong-key" not in repr(provider(vast, key="wrong-key-000000"))
    vast.gone_offers.add(111)
    p = provider(vast)
    with pytest.raises(ProviderError, match="offer 111"):
        p.create(p.search_offers(OfferQuery())[0], LaunchSpec(image="i", label="vidfarm-worker-x"))
    with pytest.raises(ProviderError, match="no Vast.ai API key"):
        VastProvider("")
    dead = vast.url
    vast.stop()
    with pytest.raises(ProviderError, match="did not answer while trying to list instances"):
        VastProvider(API_KEY, server_url=dead, retry=1).list_labelled("vidfarm")
