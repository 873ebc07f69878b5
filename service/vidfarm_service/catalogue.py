"""Every text the bot shows a person, in English and Japanese: one place, so a string is never written twice and a
language is never half done (a test checks both languages have the same keys and the same {fields}).

    say("ja", "queued", position=2)   # -> "⏳ 順番待ちです（2 番目）"

The language is the user's `/lang` choice, else Telegram's `language_code`, else English. To add strings (e.g.
/quota), add the key to both tables below; `say` fails loudly in tests for a key missing in either.
"""

from __future__ import annotations

import unicodedata
from typing import Any

LANGUAGES = ("en", "ja")
DEFAULT = "en"

EN: dict[str, str] = {
    # access
    "private": "Sorry, this is a private render farm. If you know its owner, send them your id: {user_id}",
    "private_short": "Sorry, this bot is private.",
    "admin_only": "Only the farm's admin can use {command}.",
    "allow_usage": "Usage: /allow <telegram user id> or /deny <telegram user id>",
    "allowed": "User {user_id} may now use the bot (they have been told).",
    "denied": "User {user_id} can no longer use the bot.",
    "welcome_allowed": "You may now use this render farm. Send me a text and I make a video of it.",
    # help and commands
    "help": (
        "Send me a text and I make a video of it; send a photo (with a caption) and I bring it to life. "
        "Two photos in one album become the first and last frame.\n"
        "/options - length, shape, model\n/status - what is running now\n/jobs - your recent jobs\n"
        "/cancel - stop the running job\n/quota - what is left of today's videos, GPU minutes and money\n"
        "/lang - English or Japanese"
    ),
    "unsupported": "I can't use that kind of message. {help_hint}",
    "voice": "I can't listen to voice messages yet: please send the description as text.",
    "help_hint": "Send a text describing the video, or a photo; /help shows everything.",
    "cmd_options": "length, shape, model",
    "cmd_status": "what is running now",
    "cmd_jobs": "your recent jobs",
    "cmd_cancel": "stop the running job",
    "cmd_quota": "what is left of today's videos, GPU minutes and money",
    "cmd_lang": "English or Japanese",
    "cmd_help": "what I can do",
    "lang_choose": "Which language?",
    "lang_set": "I will speak English with you.",
    "no_jobs": "No jobs yet: send me a text.",
    "jobs_title": "Your recent jobs:",
    "nothing_running": "Nothing of yours is running or waiting. Send a text to start a video.",
    "nothing_to_cancel": "Nothing of yours is running or waiting (see /jobs).",
    "canceling_job": "Stopping “{prompt}”…",
    "not_yours": "That job is not yours or no longer exists.",
    "edited_ask": "You edited your message. Make a new video from the new text?",
    "edited_yes": "▶ Yes, make it",
    "edited_no": "No",
    "album_needs_keyframes": (
        "two photos become the first and last frame, and only the keyframes strategy ends on a given frame (your "
        "options say {strategy}). Choose keyframes in /options, or send one photo."
    ),
    "album_too_many": "An album can have two photos (first and last frame); I used the first two.",
    # requests refused
    "refused": "I can't start that: {reason}",
    "prompt_empty": "the description is empty: tell me what the video should show.",
    "prompt_long": "the description has {chars} characters; at most {limit}, please. Shorten it.",
    "file_too_big": "That file is {size} MB; I take images up to {limit} MB. Send it as a photo (Telegram compresses "
    "it) or a smaller file.",
    "not_image": "that file is not a picture I can read. Send a JPEG, PNG, WEBP or HEIC photo.",
    "quota_jobs": "you have used your {limit} videos for today; try again tomorrow.",
    "quota_minutes": "you have used {used} of your {limit} GPU minutes for today; try again tomorrow.",
    "option_bad": "{detail}. Change it in /options.",
    "option_saved": "Saved",
    "option_same": "Already chosen",
    "option_invalid": "That choice can't be used: {detail}",
    "confirm_expensive": "This video is long ({seconds} s): about {eta} of rendering. Start it?",
    "confirm_expensive_cost": "This video is long ({seconds} s): about {eta} of rendering and about ${cost:.2f} "
    "of GPU time. Start it?",
    "confirm_yes": "▶ Start",
    "confirm_no": "Cancel",
    "not_started": "OK, not started.",
    # options
    "options_title": "Options for your next videos (each estimate is for the current length):",
    "row_seconds": "⏱ Length",
    "row_shape": "📐 Shape",
    "row_recipe": "🎞 Model",
    "row_strategy": "🧩 How segments join",
    "shape_auto": "from photo",
    "recipe_unavailable": "Not available here now: {names} (no GPU workers are configured).",
    "estimate": "{name}: about {eta}",
    "keyframe_photo": "Keyframe {index}: the video passes through this picture",
    "estimate_cost": "{name}: about {eta}, about ${cost:.2f} of GPU time",
    "estimate_unknown": "{name}: no estimate yet",
    # status
    "kind_text": "text → video",
    "kind_photo": "photo → video",
    "kind_photos": "2 photos → video: from the first photo to the second",
    "stage_queued": "⏳ Waiting: {position} ahead of you",
    "stage_queued_first": "⏳ Next in line",
    "stage_starts_in": "starts in about {eta}",
    "stage_resuming": "⏳ Waiting to resume after a restart",
    "stage_starting": "Starting the renderer",
    "stage_gpu": "Renting a GPU",
    "stage_planning": "Planning the shots",
    "stage_keyframes": "Keyframes {done}/{total}",
    "stage_segments": "Segments {done}/{total}",
    "stage_rendering": "Rendering",
    "stage_joining": "Joining the segments",
    "stage_vr": "Making the VR180 copy",
    "stage_uploading": "Sending the video",
    "stage_canceling": "✖ Stopping…",
    "eta_left": "about {eta} left",
    "eta_soon": "almost done",
    "status_head": "🎬 “{prompt}” · {seconds} s · {shape} · {recipe}",
    # outcome
    "done_caption": "✅ “{prompt}”\n{width}×{height}, {duration} s · seed {seed}{cost}\n▶ Watch / download: {link}\n"
    "(link valid until {expires})",
    "done_too_big": "✅ “{prompt}”: the video is {size} MB, too big to send here.\n▶ Watch / download: {link}\n"
    "(link valid until {expires})",
    "cost": " · {cost}",
    "canceled": "✖ Stopped “{prompt}”. Nothing more runs for it.",
    "failed": "❌ “{prompt}” failed: {why}",
    "why_option": "an option can't be used. Change it in /options and send the text again.",
    "why_image": "I couldn't use the photo. Send another one (JPEG or PNG).",
    "why_recipe": "that model isn't available here now. Choose another one in /options.",
    "why_budget": "today's GPU budget is used up. It resets at 00:00 UTC; /quota shows what is left.",
    "why_workers": "no GPU worker could take the job. Try again later or choose “standin” in /options.",
    "why_memory": "the GPU ran out of memory. Try a shorter video or a smaller shape in /options.",
    "why_other": "something went wrong on the farm (it is logged for the admin). Try again in a while.",
    "oops": "Something went wrong on my side; please try again.",
    # buttons
    "btn_cancel": "✖ Cancel",
    "btn_again": "🎲 Again",
    "btn_same_seed": "🔁 Same seed",
    "btn_longer": "⏩ Longer",
    "btn_vertical": "📱 Vertical",
    "btn_vr180": "🥽 VR180",
    "btn_watch": "▶ Watch",
    "btn_resend": "📩 Resend",
    "btn_link": "🔗 New link",
    "btn_rerun": "🎲 Re-run",
    "starting_again": "Starting again",
    "link_new": "▶ {link}\n(valid until {expires})",
    "no_result": "That job has no video.",
    # job list
    "status_queued": "waiting",
    "status_running": "rendering",
    "status_succeeded": "done",
    "status_failed": "failed",
    "status_canceling": "stopping",
    "status_canceled": "stopped",
    # watch page
    "watch_title": "vidfarm video",
    "watch_download": "⬇ Download",
    "watch_details": "{width}×{height} · {duration} s · seed {seed} · {recipe}",
    "watch_expired": "This link is invalid or has expired: ask the bot for a new one (/jobs).",
    # the rented fleet (vidfarm_service.fleet): budgets, cold start, cost, /quota
    "fleet_user_budget": "your GPU budget for today (${cap:.2f}) is used up (${spent:.2f} spent); it resets "
    "at 00:00 UTC, or ask the admin to raise it",
    "fleet_fleet_budget": "the farm's GPU budget (${cap:.2f} per {window}) would be exceeded by renting a worker "
    "now; try again in a while, or ask the admin to raise it",
    "fleet_no_worker": "no GPU worker could be rented within {minutes:.0f} minutes (none offered under ${price:.2f}/h, "
    "or the hosts were slow); try again later",
    "fleet_renting": "renting {n} GPU worker(s)",
    "fleet_image": "pulling the worker image",
    "fleet_booting": "starting ComfyUI and fetching models",
    "fleet_models": "fetching models {percent:.0f} % ({done:.1f} of {total:.1f} GB)",
    "fleet_comfyui": "starting ComfyUI",
    "fleet_ready": "{ready} of {n} ready",
    "fleet_cost": "GPU {seconds:.0f} s · ${cost:.3f}",
    "fleet_quota": "Left today: {jobs} of {jobs_cap} jobs · {minutes:.0f} of {minutes_cap:g} GPU minutes "
    "· ${money:.2f} of ${money_cap:.2f}",
    "fleet_fleet": "Fleet: ${spent:.2f} spent today (cap ${cap:.2f}) · {live} live worker(s)",
    "fleet_worker": "· {name}: {state}{job}, ${price:.3f}/h, up {minutes:.0f} min",
    "fleet_window_hour": "hour",
    "fleet_window_day": "day",
}

JA: dict[str, str] = {
    "private": "申し訳ありません。このボットは限られた方だけが使えます。管理者をご存じでしたら、こちらの ID を"
    "お伝えください: {user_id}",
    "private_short": "申し訳ありません。このボットは限られた方専用です。",
    "admin_only": "{command} は管理者だけが使えます。",
    "allow_usage": "使い方: /allow <Telegram ユーザー ID> または /deny <Telegram ユーザー ID>",
    "allowed": "ユーザー {user_id} が使えるようになりました（ご本人にもお知らせしました）。",
    "denied": "ユーザー {user_id} は使えなくなりました。",
    "welcome_allowed": "このボットが使えるようになりました。作りたい動画の説明を送ってください。",
    "help": (
        "動画の説明を送っていただくと、その動画を作ります。写真（説明文つき）を送ると、写真が動き出します。"
        "2 枚の写真をまとめて送ると、最初と最後のフレームになります。\n"
        "/options - 長さ・形・モデル\n/status - いま生成中のもの\n/jobs - 最近の動画\n"
        "/cancel - 生成中の動画をキャンセル\n/quota - 本日の残り（動画の本数・GPU 時間・予算）\n"
        "/lang - 日本語 / English"
    ),
    "unsupported": "この種類のメッセージには対応していません。{help_hint}",
    "voice": "音声メッセージにはまだ対応していません。動画の説明を文字で送ってください。",
    "help_hint": "作りたい動画の説明か写真を送ってください。/help で使い方を表示します。",
    "cmd_options": "長さ・形・モデル",
    "cmd_status": "いま生成中のもの",
    "cmd_jobs": "最近の動画",
    "cmd_cancel": "生成中の動画をキャンセル",
    "cmd_quota": "本日の残り（動画の本数・GPU 時間・予算）",
    "cmd_lang": "日本語 / English",
    "cmd_help": "使い方",
    "lang_choose": "どちらの言語にしますか？",
    "lang_set": "これから日本語でお話しします。",
    "no_jobs": "まだ動画はありません。作りたい動画の説明を送ってください。",
    "jobs_title": "最近の動画:",
    "nothing_running": "生成中・順番待ちの動画はありません。説明を送ると動画を作り始めます。",
    "nothing_to_cancel": "キャンセルできる動画はありません（/jobs で一覧を表示します）。",
    "canceling_job": "「{prompt}」をキャンセルしています…",
    "not_yours": "その動画はほかの方のものか、すでに削除されています。",
    "edited_ask": "メッセージが編集されました。新しい内容で動画を作り直しますか？",
    "edited_yes": "▶ 作り直す",
    "edited_no": "いいえ",
    "album_needs_keyframes": (
        "2 枚の写真は最初と最後のフレームになりますが、決まったフレームで終われるのはつなぎ方「keyframes」だけです"
        "（いまの設定は {strategy}）。/options で keyframes を選ぶか、写真を 1 枚だけ送ってください。"
    ),
    "album_too_many": "アルバムは 2 枚まで（最初と最後のフレーム）です。最初の 2 枚を使いました。",
    "refused": "開始できませんでした: {reason}",
    "prompt_empty": "説明が空です。どんな動画にしたいか書いてください。",
    "prompt_long": "説明が {chars} 文字あります。{limit} 文字以内に短くしてください。",
    "file_too_big": "このファイルは {size} MB です。画像は {limit} MB までです。"
    "写真として送る（Telegram が圧縮します）か、小さいファイルを送ってください。",
    "not_image": "このファイルは読み込める画像ではありません。JPEG・PNG・WEBP・HEIC の写真を送ってください。",
    "quota_jobs": "本日の上限（{limit} 本）に達しました。明日またお試しください。",
    "quota_minutes": "本日の GPU 利用時間 {limit} 分のうち {used} 分を使いました。明日またお試しください。",
    "option_bad": "{detail}。/options で設定を変更してください。",
    "option_saved": "保存しました",
    "option_same": "すでに選択されています",
    "option_invalid": "その設定は使えません: {detail}",
    "confirm_expensive": "長い動画（{seconds} 秒）です。生成に約 {eta} かかります。開始しますか？",
    "confirm_expensive_cost": "長い動画（{seconds} 秒）です。生成に約 {eta}、GPU料金は約 ${cost:.2f} かかります。"
    "開始しますか？",
    "confirm_yes": "▶ 開始する",
    "confirm_no": "やめる",
    "not_started": "開始しませんでした。",
    "options_title": "次の動画の設定です（目安の時間は現在の長さの場合です）:",
    "row_seconds": "⏱ 長さ",
    "row_shape": "📐 形",
    "row_recipe": "🎞 モデル",
    "row_strategy": "🧩 つなぎ方",
    "shape_auto": "写真に合わせる",
    "recipe_unavailable": "現在この環境では使えません: {names}（GPU ワーカーが設定されていません）。",
    "estimate": "{name}: 約 {eta}",
    "keyframe_photo": "キーフレーム {index}：動画はこの場面を通ります",
    "estimate_cost": "{name}: 約 {eta}・GPU料金 約 ${cost:.2f}",
    "estimate_unknown": "{name}: 目安はまだありません",
    "kind_text": "文章 → 動画",
    "kind_photo": "写真 → 動画",
    "kind_photos": "写真 2 枚 → 動画: 1 枚目から 2 枚目へ",
    "stage_queued": "⏳ 順番待ちです（前に {position} 件）",
    "stage_queued_first": "⏳ 次に開始します",
    "stage_starts_in": "約 {eta} 後に開始",
    "stage_resuming": "⏳ 再起動後の再開を待っています",
    "stage_starting": "生成の準備中",
    "stage_gpu": "GPU を借りています",
    "stage_planning": "構成を考えています",
    "stage_keyframes": "キーフレーム {done}/{total}",
    "stage_segments": "セグメント {done}/{total}",
    "stage_rendering": "生成中",
    "stage_joining": "セグメントをつないでいます",
    "stage_vr": "VR180 版を作っています",
    "stage_uploading": "動画を送信しています",
    "stage_canceling": "✖ キャンセルしています…",
    "eta_left": "残り約 {eta}",
    "eta_soon": "まもなく完了",
    "status_head": "🎬「{prompt}」· {seconds} 秒 · {shape} · {recipe}",
    "done_caption": "✅「{prompt}」\n{width}×{height}・{duration} 秒・シード {seed}{cost}\n"
    "▶ 再生・ダウンロード: {link}\n（リンクの有効期限: {expires}）",
    "done_too_big": "✅「{prompt}」: 動画が {size} MB あり、ここでは送れません。\n▶ 再生・ダウンロード: {link}\n"
    "（リンクの有効期限: {expires}）",
    "cost": "・{cost}",
    "canceled": "✖「{prompt}」をキャンセルしました。これ以上は実行されません。",
    "failed": "❌「{prompt}」を作れませんでした: {why}",
    "why_option": "使えない設定があります。/options で設定を変えて、もう一度送ってください。",
    "why_image": "写真を読み込めませんでした。別の写真（JPEG か PNG）を送ってください。",
    "why_recipe": "そのモデルは現在使えません。/options で別のモデルを選んでください。",
    "why_budget": "本日の GPU 予算を使い切りました。UTC の 0 時にリセットされます。残りは /quota で確認できます。",
    "why_workers": "GPU ワーカーが見つかりませんでした。しばらくしてからお試しいただくか、"
    "/options で「standin」を選んでください。",
    "why_memory": "GPU のメモリが足りませんでした。/options で短い動画か小さい形を選んでください。",
    "why_other": "サーバー側で問題が起きました（管理者向けに記録しました）。しばらくしてからもう一度お試しください。",
    "oops": "こちら側で問題が起きました。もう一度お試しください。",
    "btn_cancel": "✖ キャンセル",
    "btn_again": "🎲 もう一度",
    "btn_same_seed": "🔁 同じシード",
    "btn_longer": "⏩ 長くする",
    "btn_vertical": "📱 縦長",
    "btn_vr180": "🥽 VR180",
    "btn_watch": "▶ 再生",
    "btn_resend": "📩 再送",
    "btn_link": "🔗 新しいリンク",
    "btn_rerun": "🎲 作り直す",
    "starting_again": "もう一度作ります",
    "link_new": "▶ {link}\n（有効期限: {expires}）",
    "no_result": "この動画はありません。",
    "status_queued": "順番待ち",
    "status_running": "生成中",
    "status_succeeded": "完了",
    "status_failed": "失敗",
    "status_canceling": "キャンセル中",
    "status_canceled": "キャンセル済み",
    "watch_title": "vidfarm の動画",
    "watch_download": "⬇ ダウンロード",
    "watch_details": "{width}×{height}・{duration} 秒・シード {seed}・{recipe}",
    "watch_expired": "このリンクは無効か、有効期限が切れています。ボットで新しいリンクを受け取ってください（/jobs）。",
    # the rented fleet (vidfarm_service.fleet): budgets, cold start, cost, /quota
    "fleet_user_budget": "本日のGPU予算（${cap:.2f}）を使い切りました（${spent:.2f}使用）。UTCの0時にリセットされます。"
    "増やす場合は管理者に連絡してください",
    "fleet_fleet_budget": "今ワーカーを借りると、ファーム全体のGPU予算（{window}あたり${cap:.2f}）"
    "を超えてしまいます。しばらくしてからもう一度お試しいただくか、管理者に予算の引き上げを依頼してください",
    "fleet_no_worker": "{minutes:.0f}分以内にGPUワーカーを借りられませんでした（${price:.2f}/時以下の空きがないか、"
    "ホストが遅いようです）。後でもう一度お試しください",
    "fleet_renting": "GPUワーカーを{n}台レンタル中",
    "fleet_image": "ワーカーのイメージを取得中",
    "fleet_booting": "ComfyUIを起動し、モデルを取得中",
    "fleet_models": "モデルを取得中 {percent:.0f}%（{total:.1f} GB 中 {done:.1f} GB）",
    "fleet_comfyui": "ComfyUIを起動中",
    "fleet_ready": "{n}台中{ready}台準備完了",
    "fleet_cost": "GPU {seconds:.0f}秒 · ${cost:.3f}",
    "fleet_quota": "本日の残り: ジョブ {jobs}/{jobs_cap}件 · GPU {minutes:.0f}/{minutes_cap:g}分 "
    "· ${money:.2f}/${money_cap:.2f}",
    "fleet_fleet": "フリート: 本日${spent:.2f}使用（上限${cap:.2f}）· 稼働中のワーカー{live}台",
    "fleet_worker": "· {name}: {state}{job}, ${price:.3f}/時, 起動から{minutes:.0f}分",
    "fleet_window_hour": "1時間",
    "fleet_window_day": "1日",
}

TABLES = {"en": EN, "ja": JA}


def pick_language(chosen: str | None, telegram_code: str | None) -> str:
    """The /lang choice, else Telegram's language_code ("ja", "ja-JP"), else English."""
    for code in (chosen, telegram_code):
        if code and code.split("-")[0].lower() in TABLES:
            return code.split("-")[0].lower()
    return DEFAULT


def say(lang: str, key: str, **fields: Any) -> str:
    """The text `key` in `lang` (English where `lang` is unknown), with `fields` filled in."""
    table = TABLES.get(lang, EN)
    return table[key].format(**fields) if fields else table[key]


def duration(seconds: float, lang: str) -> str:
    """0:45, 3:20, 1:05:00 in English; 45 秒, 3 分 20 秒 in Japanese."""
    total = max(0, round(seconds))
    hours, rest = divmod(total, 3600)
    minutes, secs = divmod(rest, 60)
    if lang == "ja":
        parts = [f"{hours} 時間" if hours else "", f"{minutes} 分" if minutes else "", f"{secs} 秒" if secs else ""]
        return " ".join(p for p in parts if p) or "0 秒"
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


def normalize(text: str) -> str:
    """Full-width digits and letters (１２, ｓｅｅｄ) as their ASCII forms: what a Japanese keyboard types."""
    return unicodedata.normalize("NFKC", text)
