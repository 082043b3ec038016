package ragent.esanalysis;

import java.util.Locale;
import java.util.Set;
import java.util.TreeSet;
import org.apache.lucene.analysis.TokenStream;
import org.apache.lucene.analysis.en.EnglishMinimalStemFilter;
import org.apache.lucene.analysis.en.EnglishPossessiveFilter;
import org.apache.lucene.analysis.en.KStemFilter;
import org.apache.lucene.analysis.en.PorterStemFilter;
import org.apache.lucene.analysis.snowball.SnowballFilter;
import org.elasticsearch.common.settings.Settings;
import org.elasticsearch.index.analysis.AbstractTokenFilterFactory;
import org.tartarus.snowball.ext.EnglishStemmer;

/**
 * The {@code stemmer} token filter for the English variants only, with the Lucene filter that
 * analysis-common picks for each {@code language} (or its older name, {@code name}).
 */
final class StemmerFilterFactory extends AbstractTokenFilterFactory {

    /** English variants and the spellings analysis-common accepts for them. */
    private enum Variant {
        PORTER("english", "porter"),
        PORTER2("porter2"),
        LIGHT_ENGLISH("light_english", "lightenglish", "kstem"),
        MINIMAL_ENGLISH("minimal_english", "minimalenglish"),
        POSSESSIVE_ENGLISH("possessive_english", "possessiveenglish");

        private final Set<String> spellings;

        Variant(String... spellings) {
            this.spellings = Set.of(spellings);
        }

        static Variant of(String language) {
            String key = language.toLowerCase(Locale.ROOT);
            for (Variant variant : values()) {
                if (variant.spellings.contains(key)) {
                    return variant;
                }
            }
            Set<String> known = new TreeSet<>();
            for (Variant variant : values()) {
                known.addAll(variant.spellings);
            }
            throw new IllegalArgumentException(
                "stemmer language ["
                    + language
                    + "] is not provided by the ragent-english-analysis plugin, which stands in "
                    + "for analysis-common on the integ-test distribution; it knows "
                    + known
            );
        }
    }

    private final Variant variant;

    StemmerFilterFactory(String name, Settings settings) {
        super(name);
        variant = Variant.of(settings.get("language", settings.get("name", "porter")));
    }

    @Override
    public TokenStream create(TokenStream tokenStream) {
        return switch (variant) {
            case PORTER -> new PorterStemFilter(tokenStream);
            case PORTER2 -> new SnowballFilter(tokenStream, new EnglishStemmer());
            case LIGHT_ENGLISH -> new KStemFilter(tokenStream);
            case MINIMAL_ENGLISH -> new EnglishMinimalStemFilter(tokenStream);
            case POSSESSIVE_ENGLISH -> new EnglishPossessiveFilter(tokenStream);
        };
    }
}
