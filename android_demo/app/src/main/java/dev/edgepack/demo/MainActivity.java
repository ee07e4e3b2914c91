package dev.edgepack.demo;

import android.app.Activity;
import android.graphics.Color;
import android.os.Bundle;
import android.text.InputType;
import android.view.View;
import android.widget.Button;
import android.widget.EditText;
import android.widget.LinearLayout;
import android.widget.ScrollView;
import android.widget.TextView;

import dev.edgepack.core.Manifest;
import dev.edgepack.core.PostProcess;

import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;

/**
 * One screen. Embedding bundle: type notes (one per line) and a query, get the notes ranked by cosine
 * similarity. Classifier bundle: type a sentence, get the label and its probability. Every run shows its
 * latency and sequence bucket. "Check golden cases" replays the build's golden inputs on this phone.
 * The UI is built in code to keep the demo to two source files.
 */
public final class MainActivity extends Activity {
    private static final String SAMPLE_NOTES =
            "Buy oat milk and coffee beans\nCall the dentist about Tuesday\nIdeas for the team offsite in June\n"
            + "The train to Lyon leaves at 8:15\nRead the paper on int8 quantisation";

    // One background thread: inference never blocks the UI, and EdgepackModel is used from one thread only.
    private final ExecutorService worker = Executors.newSingleThreadExecutor();
    private final Map<String, float[]> noteCache = new HashMap<>();
    // Set once by the worker after loading; read by the UI thread to enable the buttons.
    private volatile EdgepackModel model;
    private TextView status;
    private TextView results;
    private EditText notes;
    private EditText query;
    private Button runButton;
    private Button goldenButton;

    @Override
    protected void onCreate(Bundle savedInstanceState) {
        super.onCreate(savedInstanceState);
        int pad = (int) (16 * getResources().getDisplayMetrics().density);
        LinearLayout column = new LinearLayout(this);
        column.setOrientation(LinearLayout.VERTICAL);
        column.setPadding(pad, pad, pad, pad);

        status = new TextView(this);
        status.setText("Loading assets/" + EdgepackModel.ASSET_DIR + "/ …");
        column.addView(status);
        notes = new EditText(this);
        notes.setInputType(InputType.TYPE_CLASS_TEXT | InputType.TYPE_TEXT_FLAG_MULTI_LINE);
        notes.setMinLines(4);
        notes.setText(SAMPLE_NOTES);
        notes.setVisibility(View.GONE);
        column.addView(notes);
        query = new EditText(this);
        query.setSingleLine(false);
        column.addView(query);
        runButton = new Button(this);
        runButton.setEnabled(false);
        column.addView(runButton);
        goldenButton = new Button(this);
        goldenButton.setText("Check golden cases on this phone");
        goldenButton.setEnabled(false);
        column.addView(goldenButton);
        results = new TextView(this);
        results.setTextIsSelectable(true);
        column.addView(results);

        ScrollView scroll = new ScrollView(this);
        scroll.addView(column);
        setContentView(scroll);

        runButton.setOnClickListener(v -> {
            final String notesText = notes.getText().toString();
            final String queryText = query.getText().toString();
            submit(() -> runQuery(notesText, queryText));
        });
        goldenButton.setOnClickListener(v -> submit(this::runGolden));
        worker.execute(this::load);
    }

    private interface Job {
        String run() throws Exception;
    }

    /** Runs a job off the UI thread; its text (or its error, in red) replaces the results. */
    private void submit(final Job job) {
        runButton.setEnabled(false);
        goldenButton.setEnabled(false);
        worker.execute(() -> {
            String text;
            boolean failed = false;
            try {
                text = job.run();
            } catch (Exception e) {
                text = e.getClass().getSimpleName() + ": " + e.getMessage();
                failed = true;
            }
            final String shown = text;
            final boolean red = failed;
            runOnUiThread(() -> {
                results.setTextColor(red ? Color.RED : Color.DKGRAY);
                results.setText(shown);
                runButton.setEnabled(model != null);
                goldenButton.setEnabled(model != null);
            });
        });
    }

    private void load() {
        String message;
        boolean ok = false;
        try {
            long start = System.nanoTime();
            model = EdgepackModel.open(getAssets(), 2);
            Manifest m = model.bundle.manifest;
            message = String.format(Locale.ROOT, "%s bundle for %s, %s with signatures %s, vocab and manifest verified in %.0f ms",
                    m.task, m.target, model.bundle.model.path, java.util.Arrays.toString(model.bundle.signatures),
                    (System.nanoTime() - start) / 1e6);
            ok = true;
        } catch (Exception e) {
            message = "Cannot load the bundle: " + e.getMessage()
                    + "\n\nBuild one into the assets first:\nedgepack build --target android-arm64 --out android_demo/app/src/main/assets/edgepack";
        }
        final String shown = message;
        final boolean loaded = ok;
        runOnUiThread(() -> {
            status.setText(shown);
            status.setTextColor(loaded ? Color.DKGRAY : Color.RED);
            if (!loaded) return;
            boolean classifier = model.bundle.manifest.isClassifier();
            notes.setVisibility(classifier ? View.GONE : View.VISIBLE);
            query.setHint(classifier ? "A sentence to classify" : "Search the notes above");
            runButton.setText(classifier ? "Classify" : "Search notes");
            runButton.setEnabled(true);
            goldenButton.setEnabled(true);
        });
    }

    private String runQuery(String notesText, String queryText) throws Exception {
        return model.bundle.manifest.isClassifier() ? classify(queryText) : search(notesText, queryText);
    }

    private String classify(String text) throws Exception {
        EdgepackModel.Run run = model.run(text);
        float[] probs = PostProcess.softmax(run.output);
        List<String> labels = model.bundle.manifest.labels;
        StringBuilder sb = new StringBuilder();
        for (PostProcess.Scored s : PostProcess.topK(probs, 3)) {
            String label = s.index < labels.size() ? labels.get(s.index) : String.valueOf(s.index);
            sb.append(String.format(Locale.ROOT, "%s  %.3f%n", label, s.score));
        }
        return sb.append(latency("run", run)).toString();
    }

    private String search(String notesText, String queryText) throws Exception {
        List<String> lines = new ArrayList<>();
        for (String line : notesText.split("\n")) if (!line.trim().isEmpty()) lines.add(line.trim());
        if (lines.isEmpty()) return "Type a few notes, one per line.";
        StringBuilder timing = new StringBuilder();
        List<float[]> vectors = new ArrayList<>();
        for (String note : lines) {
            float[] v = noteCache.get(note);
            if (v == null) {
                EdgepackModel.Run run = model.run(note);
                v = embedding(run.output);
                noteCache.put(note, v);
                timing.append(latency("note", run));
            }
            vectors.add(v);
        }
        EdgepackModel.Run q = model.run(queryText);
        StringBuilder sb = new StringBuilder();
        for (PostProcess.Scored s : PostProcess.rankByCosine(embedding(q.output), vectors)) {
            sb.append(String.format(Locale.ROOT, "%.3f  %s%n", s.score, lines.get(s.index)));
        }
        return sb.append('\n').append(latency("query", q)).append(timing).toString();
    }

    /** Unit length, unless the graph already normalised it (then this is a no-op worth skipping). */
    private float[] embedding(float[] output) {
        return model.bundle.manifest.normalizedInGraph ? output : PostProcess.l2Normalize(output);
    }

    private String runGolden() throws Exception {
        String problem = model.checkGolden();
        return problem == null ? "All " + model.bundle.manifest.golden.size()
                + " golden cases match the build within its tolerance, through every signature each fits in." : problem;
    }

    private static String latency(String what, EdgepackModel.Run run) {
        return String.format(Locale.ROOT, "%s: %.2f ms (%d tokens, signature %s)%n", what, run.millis, run.tokens, run.signature);
    }

    @Override
    protected void onDestroy() {
        // Closing on the worker lets a running inference finish first: an interpreter must not be closed mid-run.
        worker.execute(() -> {
            if (model != null) model.close();
        });
        worker.shutdown();
        super.onDestroy();
    }
}
