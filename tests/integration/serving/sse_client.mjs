// A minimal server-sent-events client over fetch for the load tests: it returns the raw body too,
// so that tests check the framing byte for byte ("data: <json>\n\n" events, "data: [DONE]\n\n"
// last).
export async function streamCompletion(url, body, headers = {}) {
  const response = await fetch(`${url}/v1/completions`, {
    method: 'POST', headers: {'content-type': 'application/json', ...headers},
    body: JSON.stringify({...body, stream: true}),
  });
  const raw = await response.text();
  const events = raw.split('\n\n').filter((e) => e.length > 0);
  let text = '', finish = null, framed = raw.endsWith('data: [DONE]\n\n');
  for (const event of events) {
    if (!event.startsWith('data: ') || event.includes('\n')) framed = false;
    const data = event.slice(6);
    if (data === '[DONE]') continue;
    const chunk = JSON.parse(data);
    for (const choice of chunk.choices ?? []) {
      text += choice.text;
      if (choice.finish_reason) finish = choice.finish_reason;
    }
  }
  return {status: response.status, text, finish, framed, events: events.length};
}
