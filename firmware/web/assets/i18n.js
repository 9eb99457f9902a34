// The console's words in Japanese and English. A page adds its keys here.
"use strict";
window.KUROKO_I18N = {
  ja: {
    user: "ユーザ名", password: "パスワード", login: "ログイン", logout: "ログアウト",
    bad_credentials: "ユーザ名またはパスワードが違います。",
    locked: "ログインの失敗が続いたため、アカウントがロックされています。しばらく待ってから再度お試しください。",
    search: "検索", simple_search: "簡易検索", detail_search: "詳細検索", audit: "閲覧ログ",
    change_password: "パスワード変更", run_search: "検索", add_row: "条件を追加",
    built_query: "検索式", hits: "検索結果 {n}件", order: "表示順", newest: "日時↓", oldest: "日時↑",
    columns: "表示項目切り替え", simple_view: "簡易表示", full_view: "全表示",
    prev: "前へ", next: "次へ", detail: "詳細", dump: "ダンプデータ (pcap)",
    c_protocol: "プロトコル", c_server: "サーバ", c_client: "クライアント", c_mac: "MACアドレス",
    c_host: "ホスト(WEB) 件名(メール)", c_url: "URL(WEB)", c_method: "メソッド FROM",
    c_status: "ステータス TO,CC,BCC", c_query: "クエリ", c_ctype: "コンテントタイプ",
    c_attach: "添付", c_flags: "解析", c_time: "日時", c_sport: "サーバポート",
    c_bytes: "バイト数(上り/下り)", c_packets: "パケット数",
    query_error: "検索式の誤り ({col}桁目): {msg}", no_index: "まだ解析されたセッションがありません。",
    session: "セッション詳細", field: "項目", value: "値", back: "検索結果に戻る",
    chain_ok: "ハッシュチェーン: 正常 ({n}行)", chain_bad: "ハッシュチェーン: {line}行目で破損 — {why}",
    a_time: "日時", a_user: "ユーザ", a_addr: "接続元", a_action: "操作", a_detail: "内容", filter: "絞り込み",
    old_password: "現在のパスワード", new_password: "新しいパスワード", new_password2: "新しいパスワード(確認)",
    save: "変更", saved: "パスワードを変更しました。", mismatch: "新しいパスワードが一致しません。",
    findings: "診断結果", f_risk: "リスク", f_title: "検出内容", f_count: "件数", f_last: "最終検出",
    f_counter: "対策", f_evidence: "証拠セッション",
    forbidden: "この操作の権限がありません。", error: "エラー: {msg}", loading: "検索中…",
  },
  en: {
    user: "User name", password: "Password", login: "Log in", logout: "Log out",
    bad_credentials: "Wrong user name or password.",
    locked: "Too many failed logins: the account is locked. Wait a while and try again.",
    search: "Search", simple_search: "Simple search", detail_search: "Query search", audit: "Audit log",
    change_password: "Change password", run_search: "Search", add_row: "Add condition",
    built_query: "Query", hits: "{n} sessions found", order: "Order", newest: "Newest first", oldest: "Oldest first",
    columns: "Columns", simple_view: "Simple", full_view: "All",
    prev: "Previous", next: "Next", detail: "Detail", dump: "Packets (pcap)",
    c_protocol: "Protocol", c_server: "Server", c_client: "Client", c_mac: "MAC address",
    c_host: "Host (web) / Subject (mail)", c_url: "URL", c_method: "Method / From",
    c_status: "Status / To, Cc, Bcc", c_query: "Query", c_ctype: "Content type",
    c_attach: "Attachments", c_flags: "Analysis", c_time: "Time", c_sport: "Server port",
    c_bytes: "Bytes (up/down)", c_packets: "Packets",
    query_error: "Query error at column {col}: {msg}", no_index: "No session has been analyzed yet.",
    session: "Session detail", field: "Field", value: "Value", back: "Back to the results",
    chain_ok: "Hash chain: intact ({n} lines)", chain_bad: "Hash chain: broken at line {line} — {why}",
    a_time: "Time", a_user: "User", a_addr: "From", a_action: "Action", a_detail: "Detail", filter: "Filter",
    old_password: "Current password", new_password: "New password", new_password2: "New password (again)",
    save: "Change", saved: "The password was changed.", mismatch: "The new passwords differ.",
    findings: "Findings", f_risk: "Risk", f_title: "Finding", f_count: "Count", f_last: "Last seen",
    f_counter: "Countermeasures", f_evidence: "Evidence sessions",
    forbidden: "Your role may not do this.", error: "Error: {msg}", loading: "Searching…",
  },
};
window.kt = function (lang, key, vars) {
  const table = window.KUROKO_I18N[lang] || window.KUROKO_I18N.ja;
  let s = table[key] || window.KUROKO_I18N.en[key] || key;
  for (const k in (vars || {})) s = s.split("{" + k + "}").join(String(vars[k]));
  return s;
};
